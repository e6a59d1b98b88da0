"""The generic steps every integration pair uses: extract, match, upsert, summary."""
