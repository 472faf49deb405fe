"""Chat providers: a generic signed webhook and Slack incoming webhooks."""
