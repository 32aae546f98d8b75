"""Workers: broker setup, the `jobs.run` actor, the runner, the lead sink, enqueueing."""
