"""gpusizer.domain"""
