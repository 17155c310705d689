"""The scheduler: escalation, re-checks, monitors and reminders that survive restarts."""
