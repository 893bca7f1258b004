"""gpusizer.cli"""
