"""The probe engine: one stdlib-only agent, executors that carry it into pods or netns, and the runner."""
