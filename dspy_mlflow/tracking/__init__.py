"""What makes a run trustworthy to compare: its identity and its LM cache."""
