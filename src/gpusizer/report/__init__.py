"""gpusizer.report"""
