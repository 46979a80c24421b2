"""Where a ticket goes and how fast: the routing policy, SLA clocks and escalation, customer tiers."""
