"""The library every registry service imports: domain rules, events, settings, logging, adapters."""
