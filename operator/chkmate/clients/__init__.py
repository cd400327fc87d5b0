"""The only I/O of chkmate: GitHub, git, terraform and Kubernetes clients behind small interfaces."""
