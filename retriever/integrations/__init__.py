"""Adapters that hand search results to RAG frameworks: LangChain, LlamaIndex, Haystack.

Each adapter is its own module and needs only its own framework (an optional extra:
``vision-retriever[langchain]``, ``[llamaindex]``, ``[haystack]``); this package imports
none of them. All three flatten ``Hit``s the same way (``_records``): one record per
returned region, with the page's identity, the region's box and both scores.
"""
