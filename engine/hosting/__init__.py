"""Hosting for a class: accounts, roles, sessions, sign-in identity, the one access rule,
quotas, the classroom (leaderboard, usage) and who may write into a job."""
