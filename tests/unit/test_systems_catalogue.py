"""The systems and cloud catalogues (data/systems.yaml, data/cloud.yaml, data/checkpoints.yaml)
and the placement of GPUs into boxes (plan/systems.py): real slots, real links, real power."""

from __future__ import annotations

import re

from gpusizer.catalog.load import (
    checkpoints,
    cloud_instances,
    gpu_catalogue,
    interconnects,
    quant_catalogue,
    system_file,
)
from gpusizer.plan.systems import cloud_choice, module_gpus, placements

GPUS = {g.key: g for g in gpu_catalogue()}
SF = system_file()
LINKS = {**interconnects(), **SF.links}


def _place(gpu: str, per_engine: int, engines: int) -> dict[str, object]:
    return {p.system.key: p for p in placements(GPUS[gpu], per_engine, engines, SF.systems, LINKS, SF.pcie)}


def test_every_system_is_sourced_dated_and_resolvable() -> None:
    for s in SF.systems:
        assert s.source and s.date and s.price_basis and s.examples, s.key
        for slot in s.slots:
            assert re.fullmatch(r"pcie[345]-x(4|8|16)", slot) or slot in LINKS or slot == "soc", (s.key, slot)
        for g in s.takes_gpus:
            assert g in GPUS, (s.key, g)
        assert s.network is None or s.network in LINKS
        if s.kind == "mac":
            assert s.unified_memory_bytes and s.gpu_count == 1
        if s.kind in ("hgx", "oam-platform"):
            assert s.gpu_count == 8 and s.takes_gpus


def test_cloud_instances_and_checkpoints_are_dated_and_known() -> None:
    for i in cloud_instances():
        assert i.gpu in GPUS and i.date and i.source.startswith(("http", "facts.md")), i.key
    fmts = {f.key for f in quant_catalogue()}
    for c in checkpoints():
        assert c.format in fmts and c.checked and "/" in c.repo and " " not in c.repo, c


def test_module_gpus_go_only_in_their_platform_and_only_full() -> None:
    modules = module_gpus(SF.systems)
    assert {"h100-sxm", "h200-sxm", "b200", "mi300x"} <= modules
    assert set(_place("mi300x", 8, 1)) == {"mi300x-platform-8gpu"}
    assert _place("mi300x", 4, 1) == {} and _place("h200-sxm", 1, 1) == {}  # bought with all 8
    assert set(_place("h200-sxm", 1, 8)) == {"hgx-h200-8gpu"}  # 8 engines of one GPU fill it


def test_geforce_cards_never_go_eight_to_a_box() -> None:
    assert _place("rtx-5070-ti", 8, 1) == {} and _place("rtx-4090", 1, 8).keys() <= {
        "desktop-1gpu",
        "desktop-2gpu",
        "workstation-4gpu",
    }
    assert set(_place("rtx-4090", 4, 1)) == {"workstation-4gpu"}


def test_links_follow_the_slots_and_p2p() -> None:
    desk = _place("rtx-4090", 2, 1)["desktop-2gpu"]
    ws = _place("rtx-4090", 2, 1)["workstation-4gpu"]
    assert desk.link_name == "pcie4-x8-no-p2p" and ws.link_name == "pcie4-x16-no-p2p"  # type: ignore[attr-defined]
    assert desk.link.bandwidth_bps < ws.link.bandwidth_bps  # type: ignore[attr-defined]
    pro = _place("rtx-pro-6000", 2, 1)["desktop-2gpu"]
    assert pro.link_name == "pcie5-x8"  # type: ignore[attr-defined]  # workstation cards keep P2P
    assert pro.link.busbw_fraction > desk.link.busbw_fraction  # type: ignore[attr-defined]
    assert _place("rtx-3090", 2, 1)["desktop-2gpu"].link_name == "nvlink-bridge"  # type: ignore[attr-defined]
    assert _place("h100-sxm", 8, 1)["hgx-h100-8gpu"].link_name == "nvlink4"  # type: ignore[attr-defined]


def test_cost_counts_the_box_gpus_network_and_power() -> None:
    p = _place("rtx-5090", 2, 1)["desktop-2gpu"]
    box = next(s for s in SF.systems if s.key == "desktop-2gpu")
    assert p.capex_usd == box.price_usd + 2 * (GPUS["rtx-5090"].list_price_usd or 0)  # type: ignore[attr-defined]
    assert p.power_w == box.host_power_w + 2 * (GPUS["rtx-5090"].tdp_w or 0)  # type: ignore[attr-defined]
    two = _place("h100-sxm", 16, 1)["hgx-h100-8gpu"]
    assert two.boxes == 2 and two.network_name == "infiniband-ndr"  # type: ignore[attr-defined]
    hgx = next(s for s in SF.systems if s.key == "hgx-h100-8gpu")
    assert two.capex_usd == 2 * hgx.price_usd + 16 * 30000 + 2 * (hgx.network_usd_per_box or 0)  # type: ignore[attr-defined]


def test_cloud_choice_packs_engines_into_instances() -> None:
    c = cloud_choice("l40s", 4, 2, cloud_instances())
    assert c is not None and c.usd_per_hour <= 2 * 10.493 + 1e-9
    g6e = cloud_choice("l40s", 4, 1, [i for i in cloud_instances() if i.provider == "AWS"])
    assert g6e is not None and g6e.label == "1× AWS g6e.12xlarge"
    assert cloud_choice("rtx-3060", 1, 1, cloud_instances()) is None
