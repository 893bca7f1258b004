"""gpusizer.estimate"""
