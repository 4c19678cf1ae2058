"""Evaluation paths Paddle offers on a CPU, against the eager model's logits; not run in CI.

    .venv/bin/python benchmarks/bench_eval_paths.py [--model small]

The random 4-layer (small) or 2-layer (tiny) BERT classifier in eval mode over 1000 random
sequences of length 10 to 60, in length-sorted batches of 32: eager, the suite's static program
(speedups.static_forward, as --to_static true runs it; also of the model without speedups.speed_up,
as upstream loads it), and Paddle Inference on the exported program with its IR passes: with oneDNN
off, with the predictor's own default (Paddle 3 turns oneDNN on for a CPU) and with oneDNN asked for.
Prints examples/s (the second of two passes), the largest logit difference from eager and the share
of equal predictions.
"""

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cluebench  # noqa: E402,F401  before paddle
from bench_models import BENCH_MODELS as CONFIGS  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(CONFIGS), default="small")
    opts = parser.parse_args()
    from cluebench.train import setup as cli, speedups

    import numpy as np
    import paddle
    import paddle.inference as inference
    from paddle.static import InputSpec
    from paddlenlp.transformers import BertConfig, BertForSequenceClassification

    cli.set_device("cpu")
    paddle.seed(0)
    config = BertConfig(vocab_size=21128, num_labels=15, **CONFIGS[opts.model])
    model = speedups.speed_up(BertForSequenceClassification(config))  # as cli.load_pretrained does
    model.eval()
    paddle.seed(0)
    plain = BertForSequenceClassification(config)  # the same weights, as upstream's scripts load them
    plain.eval()
    rng = np.random.RandomState(0)
    lengths = sorted(rng.randint(10, 60, 1000))
    batches = []
    for start in range(0, len(lengths), 32):
        part = lengths[start : start + 32]
        ids = np.zeros((len(part), part[-1]), "int64")
        for row, n in enumerate(part):
            ids[row, :n] = rng.randint(5, 21000, n)
        batches.append(ids)

    def layer_path(layer):
        def run():
            with paddle.no_grad():
                return np.concatenate(
                    [
                        layer(input_ids=paddle.to_tensor(b), token_type_ids=paddle.to_tensor(b * 0)).numpy()
                        for b in batches
                    ]
                )

        return run

    def predictor_path(folder, onednn):  # onednn None: the predictor's default
        files = sorted(os.listdir(folder))
        program = next(os.path.join(folder, f) for f in files if f.endswith((".pdmodel", ".json")))
        config = inference.Config(program, os.path.join(folder, "m.pdiparams"))
        config.disable_gpu()
        config.set_cpu_math_library_num_threads(int(os.environ["OMP_NUM_THREADS"]))
        config.switch_ir_optim(True)
        config.disable_glog_info()
        if onednn:
            config.enable_mkldnn()
        elif onednn is False:
            config.disable_mkldnn()
        predictor = inference.create_predictor(config)
        names = predictor.get_input_names()

        def run():
            out = []
            for b in batches:
                predictor.get_input_handle(names[0]).copy_from_cpu(b)
                predictor.get_input_handle(names[1]).copy_from_cpu(b * 0)
                predictor.run()
                out.append(predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu())
            return np.concatenate(out)

        return run

    rows = []

    def measure(name, run):
        run()
        start = time.perf_counter()
        logits = run()
        rows.append((name, len(lengths) / (time.perf_counter() - start), logits))

    measure("eager", layer_path(model))  # first: to_static converts the layer itself
    measure("static program, without speedups.speed_up", layer_path(speedups.static_forward(plain, token_id=1)))
    measure("static program (--to_static true)", layer_path(speedups.static_forward(model, token_id=1)))
    with tempfile.TemporaryDirectory() as folder:
        paddle.jit.save(
            model,
            os.path.join(folder, "m"),
            input_spec=[
                InputSpec([None, None], "int64", "input_ids"),
                InputSpec([None, None], "int64", "token_type_ids"),
            ],
        )
        measure("Paddle Inference, IR passes, oneDNN off", predictor_path(folder, onednn=False))
        measure("Paddle Inference, IR passes (its defaults)", predictor_path(folder, onednn=None))
        measure("Paddle Inference, IR passes + oneDNN", predictor_path(folder, onednn=True))
    reference = rows[0][2]
    print(
        f"\n{opts.model} model, 1000 sequences of length 10-60, batch 32, paddle {paddle.__version__}, "
        f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}\n"
    )
    print("| path | examples/s | max abs logit difference from eager | equal predictions |")
    print("|---|---|---|---|")
    for name, speed, logits in rows:
        print(
            f"| {name} | {speed:.0f} | {np.abs(logits - reference).max():.1e} | "
            f"{np.mean(logits.argmax(1) == reference.argmax(1)):.2%} |"
        )


if __name__ == "__main__":
    main()
