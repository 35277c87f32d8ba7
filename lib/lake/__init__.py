"""The lake: where tables live, and the few storage operations the jobs need."""
