"""The two model sizes the benchmarks measure, and their names in the tables (no imports: the
PyTorch environment of bench_vs_pytorch.py reads it too)."""

BENCH_MODELS = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128),
    "small": dict(hidden_size=312, num_hidden_layers=4, num_attention_heads=12, intermediate_size=1200),
}
BENCH_LABELS = {"tiny": "tiny (2L-64H)", "small": "small (4L-312H)"}
