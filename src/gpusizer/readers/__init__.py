"""gpusizer.readers"""
