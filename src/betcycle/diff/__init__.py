"""Stage 5, diff: compare two renders (working tree or git revisions) and report changes, risks, cost and masked secrets."""
