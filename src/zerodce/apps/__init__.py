"""The applications over the pipeline: the command line, the web service, video and the Ray path."""
