"""The widgets of the embedded-simulator screen, one per module (the TUI).

Each draws one value from `tui.view` held in a reactive attribute, so that the app updates
state and Textual redraws only what changed.
"""
