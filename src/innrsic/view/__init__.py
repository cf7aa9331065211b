"""`innrsic view`: .rsic scenes on a web map, decoded vs enhanced (`scenes`: the pixels,
`server`: the HTTP side; the page and the vendored Leaflet are in ``static/``)."""
