"""GraphQL area: activity (notifications, jobs, execution details)."""
