"""Analysis passes over the IR: one module per idea, one entry function each. None imports torch."""
