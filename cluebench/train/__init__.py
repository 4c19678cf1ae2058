"""One training run (Paddle): the scripts' shared flags and set-up, the run skeleton (runner.TaskRun, the
same for every task), the training loop and its speed-ups, mixed precision, resuming after a kill, the
fast tokenizer path and the reading-comprehension run. Imports the task layer (cluebench.tasks) and the
results record; the grid never imports this package."""
