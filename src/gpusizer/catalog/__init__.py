"""gpusizer.catalog"""
