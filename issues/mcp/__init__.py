"""The issue mirror as Model Context Protocol tools and resources (issue 20, SPEC §6 "MCP").

A thin layer over the same services, filters and serializers as the REST API: `auth` decides
who calls and what they may see, `operations` does the work in plain synchronous Django,
`server` exposes it over the official MCP SDK (stdio and streamable HTTP).
"""
