"""The benchmark sweep, its history, the regression gate and the plots."""
