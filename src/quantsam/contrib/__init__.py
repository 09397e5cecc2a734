"""Adapters that put quantsam's optimizers into other frameworks' training loops (each imports its framework lazily,
so ``import quantsam.contrib`` pulls nothing beyond quantsam)."""
