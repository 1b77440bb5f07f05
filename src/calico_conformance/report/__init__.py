"""Reports: the versioned ConformanceReport, Allure attachments and HTML rendering."""
