"""The book's site: ``kv docs``, the chapter pages, the diagrams (served with the site), and
the chapters' Try it sections run as printed."""
