"""Business scenarios: business_no -> app + template -> signature -> channel."""
