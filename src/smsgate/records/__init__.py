"""Send records (sms_send_log)."""
