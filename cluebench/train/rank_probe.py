"""Run by `python -m cluebench.check` through paddle.distributed.launch: two ranks train a small layer on
data of their own for a few steps and compare digests of their weights. Equal digests mean the gradient
sync of this host (NCCL between cards, gloo on a CPU) works; rank 0 prints `RANKS AGREE` or `RANKS DIFFER`."""

import hashlib
import sys

import numpy as np
import paddle
import paddle.distributed as dist


def main():
    paddle.set_device(sys.argv[1] if len(sys.argv) > 1 else "cpu")
    dist.init_parallel_env()
    rank = dist.get_rank()
    paddle.seed(rank)  # different starting weights: DataParallel must broadcast rank 0's
    model = paddle.DataParallel(paddle.nn.Linear(16, 4))
    optimizer = paddle.optimizer.SGD(learning_rate=0.1, parameters=model.parameters())
    rng = np.random.default_rng(rank)  # different data: only the gradient all-reduce keeps them together
    for _ in range(5):
        x = paddle.to_tensor(rng.normal(size=(8, 16)).astype("float32"))
        model(x).square().mean().backward()
        optimizer.step()
        optimizer.clear_grad()
    digest = hashlib.sha256(b"".join(p.numpy().tobytes() for p in model.parameters())).hexdigest()[:16]
    every = []
    dist.all_gather_object(every, digest)
    if rank == 0:
        print(("RANKS AGREE " if len(set(every)) == 1 else "RANKS DIFFER ") + " ".join(every), flush=True)


if __name__ == "__main__":
    main()
