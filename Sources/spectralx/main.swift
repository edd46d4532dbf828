print("spectralx")
