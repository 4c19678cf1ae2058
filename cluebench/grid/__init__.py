"""The grid and what is read off it (no Paddle): jobs and the scheduler over cards (scheduler, cards,
footprint, processes, slurm), seeds reruns, the best job per task (extract), the report and its figures,
expected validation performance, the leaderboard across models, the submission zip and its checker.
Never imports cluebench.train or Paddle: it starts training only as child processes."""
