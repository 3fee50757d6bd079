"""Requests for information (release of information): logged, on the clock, checked, fulfilled, accounted.

``records`` (the typed request), ``duedates`` and ``fees`` and ``checks`` (pure rules),
``letters`` (denial and no-records letters), ``store`` (the database, through
pipeline.stores), ``service`` (each action: store, audit and release together), ``report``.
"""
