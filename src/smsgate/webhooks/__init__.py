"""App webhooks: final send statuses POSTed, signed, to each app's callback URL."""
