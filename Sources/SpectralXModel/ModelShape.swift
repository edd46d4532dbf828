/// The fixed sizes of the SpectralX ViT-L/16 configuration (spec §1, §6).
public enum ModelShape {
    public static let imageSize = 224
    public static let grid = 14            // ViT token grid side
    public static let tokens = 196         // grid²
    public static let width = 1024         // D
    public static let half = 512           // D/2: the "spatial" and "spectral" halves
    public static let depth = 24
    public static let heads = 16
    public static let mlpHidden = 4096
    public static let adaptedBlocks = [5, 11, 17, 23]
    public static let hyperGrid = 28       // HyperT internal grid side (224/8)
    public static let hyperPositions = 784 // 28²
    public static let hyperWidth = 512     // HyperT internal width
    public static let lowRank = 16         // adapter_hidden_dim
    public static let headChannels = 512   // UPerHead channels
}
