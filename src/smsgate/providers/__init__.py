"""Provider adapters: one class per SMS provider behind the `ProviderAdapter` protocol."""
