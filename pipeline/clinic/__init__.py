"""Charts ready for upcoming appointments: the appointments feed, what each clinic wants, the packets."""
