BoutputJÌ°ê=‚Ô
ΩtR$º
JÊºö®<