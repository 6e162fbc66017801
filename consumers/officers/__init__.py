"""What a liaison officer runs: `liaison subscribe`, the live feed of one partner's filtered topics."""
