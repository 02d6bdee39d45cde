"""Hosting for a class: accounts, roles, sessions, sign-in identity, the one access rule,
quotas, the classroom (leaderboard, usage), who may write into a job, and the dashboard
server's share of the CPU beside jobs training on it."""
