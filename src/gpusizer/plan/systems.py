"""Where a plan's GPUs live: N boxes of one kind (owned) or N instances of one type (cloud).

    GPU × GPUs per replica × replicas
      → boxes that take that GPU (platform-only modules go only in their platform; a Mac is its chip)
      → per box: replicas packed into its slots, within its PSU budget
      → the link tensor parallelism crosses in that box (NVLink/IF, or the slots' PCIe
        generation × lanes, staged through host memory where the cards have no P2P)
      → capex (boxes + GPUs + network), power (GPUs' TDP + the hosts' draw)

All values come from data/systems.yaml and data/cloud.yaml, passed in; nothing here reads files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gpusizer.catalog.specs import CloudInstance, GpuSpec, LinkSpec, PcieRates, SystemSpec

__all__ = [
    "CloudChoice",
    "Placement",
    "cloud_choice",
    "module_gpus",
    "placements",
    "system_gpu",
]


@dataclass(frozen=True, kw_only=True)
class Placement:
    """``boxes`` boxes of ``system``, ``gpus_per_box`` GPUs each, hold ``replicas`` engines of
    ``gpus_per_replica`` GPUs (an engine spans ``boxes_per_replica`` boxes when it is larger
    than one box). ``link`` is what TP traffic crosses inside a box (None: no TP traffic);
    ``network`` joins boxes of one engine."""

    system: SystemSpec
    boxes: int
    gpus_per_box: int
    boxes_per_replica: int
    link: LinkSpec | None
    link_name: str
    network: LinkSpec | None
    network_name: str | None
    capex_usd: float
    power_w: float

    def describe(self, gpu_name: str) -> str:
        """'1× Desktop tower, 2 GPUs (x8/x8) with 2× NVIDIA GeForce RTX 5090'."""
        s = self.system
        if s.kind == "mac":
            return f"{self.boxes}× {s.name}"
        each = ", each" if self.boxes > 1 else ""
        return f"{self.boxes}× {s.name}{each} with {self.gpus_per_box}× {gpu_name}"


@dataclass(frozen=True, kw_only=True)
class CloudChoice:
    instance: CloudInstance
    gpus_per_instance: int
    count: int
    usd_per_hour: float

    @property
    def label(self) -> str:
        i = self.instance
        pod = f" ×{self.gpus_per_instance}" if i.per_gpu_counts else ""
        return f"{self.count}× {i.provider} {i.name}{pod}"


def module_gpus(systems: Sequence[SystemSpec]) -> frozenset[str]:
    """GPUs sold only inside a platform that names them (SXM/OAM modules, Apple chips)."""
    return frozenset(g for s in systems for g in s.takes_gpus)


def system_gpu(system: SystemSpec, gpu: GpuSpec) -> GpuSpec:
    """The GPU as this box has it: a Mac configuration's own memory, named after the Mac."""
    if system.unified_memory_bytes is None:
        return gpu
    return gpu.model_copy(
        update={
            "key": system.key,
            "name": f"{system.name} ({gpu.name})",
            "memory_bytes": system.unified_memory_bytes,
            "memory_visible_bytes": None,
        }
    )


def takes(system: SystemSpec, gpu: GpuSpec, modules: frozenset[str]) -> bool:
    """Does ``system`` hold ``gpu``? (A Mac configuration's GPU is keyed by the Mac itself.)"""
    if gpu.key == system.key:
        return True
    if system.takes_gpus:
        return gpu.key in system.takes_gpus
    if gpu.key in modules:
        return False
    if system.takes_classes and gpu.gpu_class not in system.takes_classes:
        return False
    if system.takes_vendors and gpu.vendor not in system.takes_vendors:
        return False
    return not (system.max_card_tdp_w and (gpu.tdp_w or 0) > system.max_card_tdp_w)


_PCIE = re.compile(r"pcie(\d)-x(\d+)")


def _pcie_link(slot: str, gpu: GpuSpec, p2p: bool, rates: PcieRates) -> tuple[LinkSpec, str]:
    """The slowest of the slot and the card: PCIe generation × lanes, staged through host
    memory when the cards cannot talk peer-to-peer."""
    s = _PCIE.fullmatch(slot)
    g = _PCIE.fullmatch(gpu.host_link or "")
    if s is None:
        raise ValueError(f"systems.yaml: slot {slot!r} is not pcieG-xN")
    gen, lanes = int(s.group(1)), int(s.group(2))
    if g is not None:
        gen, lanes = min(gen, int(g.group(1))), min(lanes, int(g.group(2)))
    bw = rates.per_lane_bps[gen] * lanes
    frac = rates.p2p_busbw_fraction[gen]
    lat = rates.p2p_latency_s[gen]
    name = f"pcie{gen}-x{lanes}"
    how = f"PCIe {gen}.0 x{lanes}"
    if not p2p:
        frac *= rates.staged_busbw_factor
        lat *= rates.staged_latency_factor
        name += "-no-p2p"
        how += ", no P2P (through host memory)"
    link = LinkSpec(
        bandwidth_bps=bw,
        busbw_fraction=frac,
        latency_s=lat,
        latency_growth="linear",
        source=f"{how}: {rates.source}",
    )
    return link, name


def _tp_link(
    system: SystemSpec,
    gpu: GpuSpec,
    gpus_per_replica: int,
    slots_used: int,
    links: Mapping[str, LinkSpec],
    rates: PcieRates,
) -> tuple[LinkSpec | None, str]:
    if gpus_per_replica == 1:
        return None, "none (one GPU per engine)"
    first = system.slots[0]
    if not first.startswith("pcie"):  # a platform's own fabric (NVLink, Infinity Fabric)
        return links[first], first
    bridge = gpu.scale_up_link == "nvlink-bridge" and gpus_per_replica == 2
    if bridge and "nvlink-bridge" in links:
        return links["nvlink-bridge"], "nvlink-bridge"
    p2p = system.p2p and f"{gpu.vendor}/{gpu.gpu_class}" not in rates.no_p2p_gpus
    used = system.slots[: max(slots_used, gpus_per_replica)]
    return _pcie_link(min(used, key=_slot_rank), gpu, p2p, rates)


def _slot_rank(slot: str) -> int:
    m = _PCIE.fullmatch(slot)
    return int(m.group(1)) * 100 + int(m.group(2)) if m else 0


def placements(
    gpu: GpuSpec,
    gpus_per_replica: int,
    replicas: int,
    systems: Sequence[SystemSpec],
    links: Mapping[str, LinkSpec],
    rates: PcieRates,
) -> list[Placement]:
    """Every box kind that can hold ``replicas`` × ``gpus_per_replica`` of ``gpu``, each with
    the fewest boxes (replicas packed per box). Platforms sold fully populated must be filled."""
    modules = module_gpus(systems)
    out: list[Placement] = []
    c, r = gpus_per_replica, replicas
    for s in systems:
        if not takes(s, gpu, modules):
            continue
        slots = s.gpu_count or len(s.slots)
        tdp = gpu.tdp_w or 0.0
        by_power = int((s.power_budget_w - s.host_power_w) // tdp) if tdp else slots
        per_box = min(slots, by_power)
        if per_box < 1:
            continue
        if c <= per_box:
            k = per_box // c  # replicas per box
            boxes = -(-r // k)
            gpus_per_box = min(r, k) * c
            boxes_per_replica = 1
        else:  # one engine across boxes (PP over the network)
            if s.network is None or c % per_box or r > 1 or per_box < min(c, 8):
                continue  # the TP group (up to 8) stays in one box; only PP crosses the network
            boxes_per_replica = c // per_box
            boxes, gpus_per_box = boxes_per_replica, per_box
        if s.gpu_count is not None and (gpus_per_box != s.gpu_count or boxes * gpus_per_box != c * r):
            continue  # a platform is bought with all its GPUs: plans must use them all
        link, link_name = _tp_link(s, gpu, min(c, per_box), gpus_per_box, links, rates)
        network = links.get(s.network) if s.network and boxes_per_replica > 1 else None
        total = c * r
        gpu_cost = (gpu.list_price_usd or 0.0) * total
        net_cost = (s.network_usd_per_box or 0.0) * boxes if network is not None else 0.0
        out.append(
            Placement(
                system=s,
                boxes=boxes,
                gpus_per_box=gpus_per_box,
                boxes_per_replica=boxes_per_replica,
                link=link,
                link_name=link_name,
                network=network,
                network_name=s.network if network is not None else None,
                capex_usd=s.price_usd * boxes + gpu_cost + net_cost,
                power_w=boxes * s.host_power_w + total * tdp,
            )
        )
    return out


def cloud_choice(
    gpu_key: str, gpus_per_replica: int, replicas: int, instances: Sequence[CloudInstance]
) -> CloudChoice | None:
    """The cheapest way to rent ``replicas`` engines of ``gpus_per_replica`` GPUs: each engine
    inside one instance, as many engines per instance as fit."""
    best: CloudChoice | None = None
    for inst in instances:
        if inst.gpu != gpu_key:
            continue
        per_gpu = inst.usd_per_hour / inst.gpus
        sizes = inst.per_gpu_counts or (inst.gpus,)
        for n in sizes:
            if n < gpus_per_replica:
                if n != 8 or gpus_per_replica % n:
                    continue  # an engine spans instances only as whole 8-GPU nodes (PP across them)
                count = replicas * (gpus_per_replica // n)
            else:
                count = -(-replicas // (n // gpus_per_replica))
            price = per_gpu * n if inst.per_gpu_counts else inst.usd_per_hour
            choice = CloudChoice(instance=inst, gpus_per_instance=n, count=count, usd_per_hour=count * price)
            if best is None or choice.usd_per_hour < best.usd_per_hour:
                best = choice
    return best
