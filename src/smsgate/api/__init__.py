"""HTTP endpoints: thin, one service call each."""
