"""Command-line options shared by tests that run the CLI: training small enough for seconds."""

#: One epoch of 16 samples in batches of 8, window 6, 2 steps, the default patch size.
FAST_TRAINING_DEFAULT_PATCH = [
    "--epochs",
    "1",
    "--window",
    "6",
    "--steps",
    "2",
    "--batch-size",
    "8",
    "--samples-per-epoch",
    "16",
]
#: The same on 16x16 patches.
FAST_TRAINING = [*FAST_TRAINING_DEFAULT_PATCH, "--patch-size", "16"]

#: Tiny training on the CPU (window 4, 2 steps, 8 samples): the point is behaviour, not skill.
TINY_TRAIN = [
    "--window",
    "4",
    "--steps",
    "2",
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--samples-per-epoch",
    "8",
    "--patch-size",
    "16",
    "--device",
    "cpu",
]
