"""In-memory test doubles that honour acinode's contracts and error taxonomy (``Fake<Role>``), preferred to mocks."""
