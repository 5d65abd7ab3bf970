module lindungi/mongoserial

go 1.22
