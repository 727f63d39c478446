"""The durable send queue: POST /api/v1/messages, queue workers, status and cancellation."""
