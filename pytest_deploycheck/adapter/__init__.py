"""The pytest side: items, the run loop, the gate plugin, Allure per item."""
