"""What training (:mod:`ait.engine`) and evaluation (:mod:`ait.evaluate`) share, below both.

    files       writing files so that a crash never leaves half of one (no torch: reports use it too)
    precision   the device, autocast dtype and memory format a run computes in
    rundata     a run's train and test sets exactly as its config describes them
    predict     logits and features of networks over batches of images; accuracy tables

Nothing here imports the engine or evaluation (docs/design.md, "Layers"); submodules are imported
by name, so ``import ait.runtime.files`` stays free of torch.
"""
