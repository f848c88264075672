"""Command-line options shared by tests that run the CLI: training small enough for seconds."""

FAST_TRAINING = [
    "--epochs",
    "1",
    "--window",
    "6",
    "--steps",
    "2",
    "--batch-size",
    "8",
    "--patch-size",
    "16",
    "--samples-per-epoch",
    "16",
]
