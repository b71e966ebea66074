"""The app's screens: one per main-nav entry, plus pushed detail and modal screens."""
